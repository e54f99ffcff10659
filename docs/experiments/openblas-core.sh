# The encoder's 100 x 784 x 500 product in Debian's PyTorch on one thread: OpenBLAS's own kernel choice, then Cooperlake's.
rate='import torch, time
torch.set_num_threads(1)
a, b = torch.rand(100, 784), torch.rand(784, 500)
for _ in range(20): a @ b
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    for _ in range(200): a @ b
    best = min(best, (time.perf_counter() - t) / 200)
print(f"{2 * 100 * 784 * 500 / best / 1e9:.1f} GFLOP/s (best of 5 x 200)")'
OPENBLAS_VERBOSE=2 OMP_NUM_THREADS=1 /usr/bin/python3 -c "$rate"
OPENBLAS_CORETYPE=Cooperlake OPENBLAS_VERBOSE=2 OMP_NUM_THREADS=1 /usr/bin/python3 -c "$rate"
