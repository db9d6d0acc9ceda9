"""Performance measurements (issue #9): one library function per figure; tools/bench*.py print them."""
