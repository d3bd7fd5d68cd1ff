"""Running the same work on the nodes of a Ray cluster: a sweep on every node (or on the nodes whose
Ray labels match), the rank study's networks spread over the cluster's CPUs. Ray is the engine (an
optional extra, `pip install rexbench[cluster]`, imported inside functions); the nodes run the
profile and rank code of the layers below, which never know where they run, and hand back records
that the machine running the command writes.

May import: report, gate, rank, measure and everything below them.
"""
