"""JAAD data: annotations, splits, the synthetic demo set, frames and dataset builds."""
