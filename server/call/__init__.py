"""What every step of a call works within, in whichever layer it runs: its intent written first, its caller,
its progress, the failures it may raise, and the process's stop."""
