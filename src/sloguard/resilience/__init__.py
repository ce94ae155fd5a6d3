"""Circuit breakers, rate limits and load shedding; state shared across instances through Redis."""
