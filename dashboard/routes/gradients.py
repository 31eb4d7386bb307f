"""The Gradients page: draws the view for the sidebar's current selection."""

from dashboard import state
from dashboard.views import gradients

gradients.render(state.selection())
