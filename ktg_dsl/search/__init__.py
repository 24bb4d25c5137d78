"""``ktg search``: an Optuna study over the graph (``space``: what is searched; ``storage``:
where studies live; ``objective``: one trial; ``summary``: what a study holds; ``optimize``:
running trials). The search section's validation is ``check_search`` (beside ``check``, which
runs it: torch- and Optuna-free). Optuna is imported only when a search runs."""
