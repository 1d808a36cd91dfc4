"""The cluster profile: Pachyderm, Determined, Kubernetes and Seldon Core through their official clients."""
