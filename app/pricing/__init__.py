"""The pricing core: one item's answer (the ensemble, the LLM one member, comparables, the point
and the interval), with no HTTP in it. The service (app/api/serving.py) and the batch job
(app/batch/) both call `PricingCore`, so a batch price is by construction the service's price."""
