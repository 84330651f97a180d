"""asv benchmarks of fastloss (see ../asv.conf.json and README.md)."""
