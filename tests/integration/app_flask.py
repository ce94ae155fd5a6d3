"""A Flask shop under guard_wsgi, settings from SLOGUARD_* (for gunicorn tests)."""

from flask import Flask

from sloguard import SLOSpec, guard_wsgi, load_settings

shop = Flask("shop")


@shop.get("/products/<int:product_id>")
def product(product_id: int) -> dict[str, int]:
    return {"id": product_id}


settings = load_settings()
settings = settings.model_copy(
    update={"sli": settings.sli.model_copy(update={"slos": (SLOSpec(name="flask-availability"),)})}
)
app = guard_wsgi(shop, settings)
