"""The caching layer: Streamlit's ``st.cache_resource`` / ``st.cache_data`` around gnet's results, shared by
every session; every bound on what they keep is in :mod:`dashboard.cache.bounds`."""
