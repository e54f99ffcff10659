// The core's one-pass kernels against the libtorch calls they replace, at the paper's shapes, on one libtorch thread:
//   dotnet run --project bench/Vae.Kernels.Bench -c Release -- --filter '*'
// BenchmarkDotNet runs them in this process (the natives and the native tuning are set up once, as in vae).
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using TorchSharp;
using Vae.Core;
using static TorchSharp.torch;

Vae.NativeTuning.Apply();
torch.set_num_threads(1);
BenchmarkSwitcher.FromAssembly(typeof(EvaluationKernels).Assembly).Run(args);

/// <summary>The importance-weighted evaluation's decoder hidden layer with its dot products, and the softplus sum of its
/// output, for one chunk (800 samples of 5 datapoints, J = 20, H = 500, D = 784).</summary>
[InProcess, MemoryDiagnoser]
public class EvaluationKernels
{
    const int Rows = 4000, J = 20, H = 500, D = 784, M = 5;
    Tensor z = null!, wT = null!, bias = null!, y = null!, h = null!, dots = null!, product = null!, outputBias = null!, sums = null!;

    [GlobalSetup]
    public void Setup()
    {
        var g = Torch.generator(1);
        z = randn([Rows, J], generator: g); wT = randn([J, H], generator: g) * 0.1f; bias = randn([H], generator: g) * 0.1f;
        y = randn([M, H], generator: g); h = empty([Rows, H]); dots = empty([Rows]);
        product = randn([Rows, D], generator: g); outputBias = randn([D], generator: g); sums = empty([Rows]);
    }

    [Benchmark(Baseline = true)]
    public void TanhLayerDotsThroughLibtorch()
    {
        using var scope = NewDisposeScope();
        var hidden = z.mm(wT).add(bias).tanh();
        (hidden.view(Rows / M, M, H) * y).sum(-1);
    }

    [Benchmark]
    public void TanhLayerDots() => Kernels.tanhLayerDots(z, wT, bias, y, h, dots);

    [Benchmark]
    public void SoftplusRowSumsThroughLibtorch()
    {
        using var scope = NewDisposeScope();
        nn.functional.softplus(product + outputBias).sum(1);
    }

    [Benchmark]
    public void SoftplusRowSums() => Kernels.softplusRowSums(product, outputBias, sums);
}

/// <summary>Adagrad over the paper's MNIST model's parameters (784-500-20, about 1.3 million values): libtorch's four
/// passes against the one-pass update.</summary>
[InProcess, MemoryDiagnoser]
public class AdagradUpdate
{
    const long Count = 1_300_000;
    Tensor parameters = null!, gradient = null!;
    OptimizerState state = null!;
    readonly AdagradConfig config = Adagrad.paper(0.02);

    [GlobalSetup]
    public void Setup()
    {
        var g = Torch.generator(2);
        parameters = randn([Count], generator: g) * 0.01f;
        gradient = randn([Count], generator: g);
        state = Adagrad.init([parameters]);
    }

    [Benchmark(Baseline = true)]
    public void AscendThroughLibtorch()
    {
        using var scope = NewDisposeScope();
        state = Adagrad.ascend(config, state, [parameters], [gradient]);
    }

    [Benchmark]
    public void AscendOnePass() => state = Adagrad.ascendOnePass(config, state, parameters, gradient);
}
