"""The UI's pages, one module per concept; each has `router(h) -> APIRouter` over the domain functions."""
