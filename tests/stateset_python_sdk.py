"""The installed `stateset-python` distribution, importable beside our own `stateset` package.

Both use the import name `stateset`: inside this project `import stateset` is the Django project
(settings, urls), so the SDK is loaded from its installed files under the alias `stateset_sdk`.
The SDK imports its own modules relatively, so it works unchanged under the alias.

    from tests.stateset_python_sdk import sdk
    sdk.Stateset, sdk.client.RetryConfig, sdk.errors.StatesetNotFoundError, sdk.resources.GenericResource
"""

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

ALIAS = "stateset_sdk"
DISTRIBUTION = "stateset-python"


def load():
    if ALIAS in sys.modules:
        return sys.modules[ALIAS]
    init = Path(importlib.metadata.distribution(DISTRIBUTION).locate_file("stateset/__init__.py"))
    spec = importlib.util.spec_from_file_location(ALIAS, init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[ALIAS] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(ALIAS, None)
        raise
    importlib.import_module(f"{ALIAS}.client")
    importlib.import_module(f"{ALIAS}.errors")
    importlib.import_module(f"{ALIAS}.resources")
    return module


sdk = load()
VERSION = importlib.metadata.version(DISTRIBUTION)
