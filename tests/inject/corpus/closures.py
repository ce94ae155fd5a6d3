"""nonlocal, closures, nested functions and lambdas."""


def counter() -> tuple[object, object]:
    count = 0

    def bump(step: int = 1) -> int:
        nonlocal count
        count += step
        return count

    def read() -> int:
        return count

    return bump, read


def outer(x: int) -> int:
    def inner(y: int) -> int:
        return x + y

    return inner(1)


square = lambda x: x * x  # noqa: E731


def uses_global() -> int:
    global STATE
    STATE = 7
    return STATE


STATE = 0
