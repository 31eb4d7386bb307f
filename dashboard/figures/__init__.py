"""Pure builders: data in, a plotly Figure or a pandas DataFrame out. Nothing here imports Streamlit."""
