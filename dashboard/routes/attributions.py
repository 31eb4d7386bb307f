"""The Attributions page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import attributions

attributions.render(state.selection())
