"""One module per page: ``render(selection)`` functions that only draw; the sidebar lives in :mod:`.sidebar`."""
