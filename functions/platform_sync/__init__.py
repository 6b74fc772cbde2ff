"""platform_sync (seed 001): booking platforms, per-minute sync/valid jobs, scheduler control."""
