"""The Heads page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import heads

heads.render(state.selection())
