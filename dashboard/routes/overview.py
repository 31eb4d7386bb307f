"""The Overview page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import overview

overview.render(state.selection())
