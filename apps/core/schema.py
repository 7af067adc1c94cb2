def canonical_endpoints_only(endpoints, **kwargs):
    """The OpenAPI document lists each operation once, under its canonical `/v1/` path."""
    kept = []
    for path, path_regex, method, callback in endpoints:
        if not path.startswith("/v1/") or any(ch in path for ch in "()?|"):
            continue
        kept.append((path, path_regex, method, callback))
    return kept
