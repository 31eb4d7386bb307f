"""The Design lab page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import design

design.render(state.selection())
