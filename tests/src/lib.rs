//! detcd-tests: end-to-end tests over real processes (etcdctl compatibility,
//! curl/HTTP, multi-process clusters, kill -9 recovery). They arrive with the
//! server; the crate exists so the workspace has its final shape.
