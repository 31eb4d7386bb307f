"""GoogLeNet Explorer, the Streamlit dashboard over :mod:`gnet` (run ``streamlit run dashboard/serve.py``)."""
