"""One router per resource; `shiplane.api.app.ROUTERS` lists them."""
