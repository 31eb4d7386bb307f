"""The Channels page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import channels

channels.render(state.selection())
