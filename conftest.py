"""pytest anywhere in the repository (tests/, and nbval's runs of solutions/): nbval waits in short polls."""

from tests import nbval_waits

nbval_waits.install()
