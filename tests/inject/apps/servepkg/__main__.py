from tests.inject.apps.starlette_app import main

main()
