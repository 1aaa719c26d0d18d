"""Retrieval of similar priced items: a versioned ANN index of item embeddings (models/index/<version>/),
searched for comparables (the API) and for the knn estimator. Heavy imports (faiss, torch) stay
inside the functions that need them."""
