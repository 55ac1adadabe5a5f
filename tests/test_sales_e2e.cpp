// End to end: the sales and gen_sales binaries as a user runs them.
#include <doctest/doctest.h>
