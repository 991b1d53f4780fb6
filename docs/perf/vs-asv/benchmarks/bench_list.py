"""SortedList: construction, lookups, updates and iteration, at two sizes."""
import random

from sortedcontainers import SortedList


class TimeSortedList:
    params = [1_000, 10_000]
    param_names = ["n"]

    def setup(self, n):
        rnd = random.Random(n)
        self.values = [rnd.random() for _ in range(n)]
        self.sl = SortedList(self.values)
        self.probe = self.values[:200]
        self.step = max(1, n // 200)

    def time_init(self, n):
        SortedList(self.values)

    def time_add(self, n):
        sl = SortedList()
        for v in self.probe:
            sl.add(v)

    def time_contains(self, n):
        sl = self.sl
        for v in self.probe:
            v in sl

    def time_bisect_left(self, n):
        sl = self.sl
        for v in self.probe:
            sl.bisect_left(v)

    def time_getitem(self, n):
        sl = self.sl
        for i in range(0, n, self.step):
            sl[i]

    def time_index(self, n):
        sl = self.sl
        for v in self.probe:
            sl.index(v)

    def time_iter(self, n):
        for _ in self.sl:
            pass

    def time_remove_add(self, n):
        sl = self.sl
        for v in self.probe:
            sl.remove(v)
            sl.add(v)

    def time_irange(self, n):
        list(self.sl.irange(0.25, 0.5))
