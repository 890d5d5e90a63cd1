"""DNS providers behind one small interface (`base.Provider`): Route53 now, PowerDNS later.

`batching` (pure: request sizing, bisection, pagination) and `ratelimit` (one token bucket per AWS account,
shared by every worker through Redis) are the Route53 provider's building blocks.
"""
