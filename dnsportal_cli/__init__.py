"""`dnsportal`: the portal's API from a shell (clusters, endpoints, change sets, zones, policy, audit).

Talks HTTP only (no Django import): the URL and a personal API token come from DNSPORTAL_URL and
DNSPORTAL_TOKEN, or from the config file (DNSPORTAL_CONFIG, default ~/.config/dnsportal/config.toml).
"""
