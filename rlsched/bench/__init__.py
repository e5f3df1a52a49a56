"""The benchmark: controllers x seeds, tuning, protocols, paired statistics, reports and plots."""
