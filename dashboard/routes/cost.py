"""The Cost page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import cost

cost.render(state.selection())
