"""Stand-in servers for the backends that cannot run on a test machine.

pachd and the Determined master are large Go services; these stand-ins speak their real
wire protocols (pachd's gRPC PFS API from python-pachyderm's own generated service
definitions, the master's REST API with the JSON shapes of the determined SDK's
generated bindings) over a small in-memory state, so that the cluster adapters are
exercised through the official clients. The Istio gateway in front of Seldon has one
too (gateway.py): the serving-token check of infra/istio/serving-auth.yaml and a Seldon
prediction, over HTTP or HTTPS. They live under tests/ and the console never uses them.
"""

# The data both stand-ins agree on: pachd holds this commit, and the master's completed
# experiment trained on it.
DATA_REPO = "dogs-and-cats"
DATA_COMMIT = "0c6a1b2d3e4f45a6b7c8d9e0f1a2b3c4"
