"""SortedDict: item assignment, lookup, ordered iteration and pop."""
import random

from sortedcontainers import SortedDict


class TimeSortedDict:
    def setup(self):
        rnd = random.Random(1)
        self.keys = [rnd.random() for _ in range(5_000)]
        self.sd = SortedDict((k, i) for i, k in enumerate(self.keys))
        self.probe = self.keys[:300]

    def time_setitem(self):
        sd = SortedDict()
        for k in self.probe:
            sd[k] = k

    def time_getitem(self):
        sd = self.sd
        for k in self.probe:
            sd[k]

    def time_items(self):
        for _ in self.sd.items():
            pass

    def time_peekitem(self):
        sd = self.sd
        for i in range(0, 5_000, 25):
            sd.peekitem(i)

    def time_pop_set(self):
        sd = self.sd
        for k in self.probe:
            sd[k] = sd.pop(k)
