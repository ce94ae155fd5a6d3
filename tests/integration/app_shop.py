"""The demo shop guarded by sloguard, settings from SLOGUARD_* plus the demo's SLOs."""

from sloguard import guard, load_settings
from sloguard.demo import DEMO_SLOS
from sloguard.demo.shop import ShopConfig, build_shop

settings = load_settings()
settings = settings.model_copy(update={"sli": settings.sli.model_copy(update={"slos": DEMO_SLOS})})
app = guard(
    build_shop(ShopConfig(error_rate=0.25, checkout_s=(0, 0.002), slow_rate=0.0, seed=7)),
    settings,
)
