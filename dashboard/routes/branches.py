"""The Inception branches page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import branches

branches.render(state.selection())
