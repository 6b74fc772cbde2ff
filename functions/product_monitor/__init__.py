"""product_monitor (seed 002): Apify-fed Amazon product monitoring with a cache-first API."""
