"""SortedSet: set algebra and membership churn."""
import random

from sortedcontainers import SortedSet


class TimeSortedSet:
    def setup(self):
        rnd = random.Random(2)
        self.a = SortedSet(rnd.randrange(20_000) for _ in range(5_000))
        self.b = SortedSet(rnd.randrange(20_000) for _ in range(5_000))
        self.probe = list(self.a)[:300]

    def time_union(self):
        self.a | self.b

    def time_intersection(self):
        self.a & self.b

    def time_add_discard(self):
        s = self.a
        for v in self.probe:
            s.discard(v)
            s.add(v)

    def time_bisect(self):
        s = self.a
        for v in self.probe:
            s.bisect(v)
