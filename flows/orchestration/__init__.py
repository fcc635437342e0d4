"""Two ways to run the stages besides DVC: a Prefect flow (`prefect_flow`) and plain worker processes (`runner`)."""
