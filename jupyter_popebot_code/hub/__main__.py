"""`python -m jupyter_popebot_code.hub`: the JupyterHub service's command."""

from .service import main

main()
