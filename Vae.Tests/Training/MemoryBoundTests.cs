using Vae.Data;

namespace Vae.Tests.Training;

/// <summary>Memory is bounded where it matters: a training run holds as many native tensors after 2N steps as after N,
/// every façade call and every marginal-likelihood method gives back what it made, an importance-weighted evaluation's
/// peak is set by its chunk, not by K, and a training run's measured peak stays within <see cref="MemoryBudget"/>'s
/// estimate. Peaks are the process's resident high-water mark (Linux's VmHWM, reset through /proc/self/clear_refs);
/// the tests leave glibc's malloc at its defaults (TestEnvironment), which give large blocks back when freed.</summary>
public class MemoryBoundTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static long Live() => TorchSharp.torch.Tensor.TotalCount;

    static void CollectGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    static long StatusBytes(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException($"/proc/self/status has no {field} line: these tests need Linux");
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    /// <summary>How far <paramref name="act"/> raises the resident high-water mark above the resident size before it.
    /// Freed blocks that malloc still holds are given back first, so that earlier work cannot lend this its memory.</summary>
    static long PeakGrowth(Action act)
    {
        CollectGarbage();
        MallocTrim(0);
        File.WriteAllText("/proc/self/clear_refs", "5"); // resets VmHWM to the current resident size
        long before = StatusBytes("VmRSS");
        Assert.True(StatusBytes("VmHWM") - before < 8_000_000, "writing 5 to /proc/self/clear_refs did not reset VmHWM here: the peaks cannot be measured");
        act();
        return StatusBytes("VmHWM") - before;
    }

    static string Mb(long bytes) => $"{bytes / 1e6:F0} MB";

    static ImageData Rows(ImageData x, int n) => new(n, x.Height, x.Width, x.Pixels[..(n * x.Dimension)]);

    [Theory]
    [InlineData("aevb")]
    [InlineData("aevb-autograd")]
    [InlineData("iwae-dreg")]
    [InlineData("iwae-burda")]
    [InlineData("aevb-adam")]
    [InlineData("wake-sleep")]
    [InlineData("mcem")]
    public void LiveTensorsAfter2NStepsAreThoseAfterN(string run)
    {
        using var trainer = SmallMnist.ShortRun(run, seed: 3, stepSize: 0.05);
        var counts = new List<long>();
        // Monte Carlo EM's full-batch iterations count 5N samples; 20 images keep its evaluations (Appendix D) short.
        int rows = run == "mcem" ? 20 : 100;
        trainer.Fit(Rows(SmallMnist.Train, rows), new TrainingOptions
        {
            TotalSamples = 30L * rows, EvaluateEvery = 10L * rows, TestData = Rows(SmallMnist.Test, 50), MarginalLikelihoodPoints = 1,
            TensorBoard = false, Evaluated = _ => { CollectGarbage(); counts.Add(Live()); },
        });
        Assert.True(counts.Count >= 3, $"{counts.Count} evaluations");
        // The first evaluation may come before the run has made its workspaces; from the second on nothing may grow.
        Assert.True(counts.Skip(1).All(c => c == counts[1]), $"{run}: live tensors at the evaluations {string.Join(", ", counts)}");
    }

    [Fact]
    public void EveryFaçadeCallAndEveryMarginalLikelihoodMethodGivesBackWhatItMade()
    {
        string dir = TestEnvironment.NewTempDirectory();
        using var model = VariationalAutoEncoder.Create(SmallMnist.Model, seed: 5);
        var rows = Rows(SmallMnist.Test, 20);
        var x = new float[20, 784];
        for (int i = 0; i < 20; i++)
            for (int d = 0; d < 784; d++) x[i, d] = rows.Pixels[i * 784 + d];
        using var twoD = VariationalAutoEncoder.Create(new VaeModelOptions { HiddenUnits = 20, LatentDimensions = 2 }, seed: 6);
        using var linear = VariationalAutoEncoder.Create(new VaeModelOptions { InputDimension = 6, HiddenUnits = 10, LatentDimensions = 2, Likelihood = DecoderLikelihood.LinearGaussian }, seed: 7);
        var sixD = new ImageData(3, 1, 6, [.. Enumerable.Range(0, 18).Select(i => (float)Math.Sin(i))]);
        var calls = new (string Name, Action Act)[]
        {
            ("Encode", () => model.Encode(x)),
            ("Decode", () => model.Decode(new float[5, 3])),
            ("Sample", () => model.Sample(5, seed: 1)),
            ("Reconstruct", () => model.Reconstruct(x)),
            ("LowerBound B", () => model.LowerBound(rows)),
            ("LowerBound A", () => model.LowerBound(rows, SgvbEstimator.A)),
            ("LatentActivity", () => model.LatentActivity(rows)),
            ("LogLikelihood K = 500", () => model.LogLikelihood(rows, k: 500)),
            ("LogLikelihood mixed precision", () => model.LogLikelihood(rows, k: 50, mixedPrecision: true)),
            ("Score", () => model.Score(x, new ScoreOptions { ImportanceSamples = 100, BatchSize = 7 })),
            ("ExactLogLikelihood", () => linear.ExactLogLikelihood(sixD)),
            ("ExportOnnx", () => model.ExportOnnx(Path.Combine(dir, "e.onnx"), OnnxPart.Encoder)),
            ("Save", () => model.Save(Path.Combine(dir, "m.safetensors"))),
            ("Appendix D", () => new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.HmcMarginal, Seed = 2 }).EstimateWithError(twoD, Rows(rows, 2))),
            ("Exact by quadrature", () => new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.Exact }).Estimate(twoD, Rows(rows, 3))),
            ("ELBO over draws", () => new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.Elbo, Draws = 3 }).EstimateWithError(model, rows)),
        };
        foreach (var c in calls) c.Act(); // whatever is made once per process is made before counting
        CollectGarbage();
        foreach (var c in calls)
        {
            long before = Live();
            c.Act();
            c.Act();
            CollectGarbage();
            Assert.True(Live() == before, $"{c.Name}: {Live() - before} tensors left alive by 2 calls");
        }
    }

    [Fact]
    public void AnImportanceWeightedEvaluationsPeakIsSetByItsChunkNotByK()
    {
        // The paper's 784-500-20 model on 40 test images: K = 5000 unchunked would hold 5000 x 40 x 784 float32 decoder
        // outputs (627 MB) per tensor; a chunk holds about 4 million values (16 MB).
        using var model = VariationalAutoEncoder.Create(new VaeModelOptions(), seed: 1);
        var rows = Rows(SmallMnist.Test, 40);
        model.LogLikelihood(rows, k: 10); // libtorch's first-use allocations
        long k500 = PeakGrowth(() => model.LogLikelihood(rows, k: 500));
        long k5000 = PeakGrowth(() => model.LogLikelihood(rows, k: 5000));
        long scores = PeakGrowth(() => model.Score(rows, new ScoreOptions { ImportanceSamples = 5000 }));
        output.WriteLine($"peak growth: K = 500 {Mb(k500)}, K = 5000 {Mb(k5000)}, Score K = 5000 {Mb(scores)}");
        long unchunked = 5000L * 40 * 784 * 4;
        Assert.True(k5000 < unchunked / 3, $"K = 5000 raised the peak by {Mb(k5000)}, near the unchunked {Mb(unchunked)}");
        Assert.True(k5000 < 2 * k500 + 32_000_000, $"the peak grew with K: {Mb(k500)} at K = 500, {Mb(k5000)} at K = 5000");
        Assert.True(scores < unchunked / 3, $"Score at K = 5000 raised the peak by {Mb(scores)}");
    }

    [Fact]
    public void ATrainingRunsMeasuredPeakStaysWithinTheMemoryBudgetsEstimate()
    {
        // Large enough that the run's own memory dominates the peak: 784-2000-50, M = 1000.
        var options = new VaeModelOptions { HiddenUnits = 2000, LatentDimensions = 50 };
        var data = SmallMnist.Train;
        const int batch = 1000;
        long estimate = MemoryBudget.ModelBytes(options) + MemoryBudget.StepBytes(options, batch) + MemoryBudget.DataBytes(options, data.Count);
        foreach (var gradient in new[] { GradientComputation.Auto, GradientComputation.Autograd })
        {
            long peak = PeakGrowth(() =>
            {
                using var trainer = new AevbTrainer(options, new AevbOptions { Seed = 1, BatchSize = batch, Gradient = gradient });
                trainer.Fit(data, new TrainingOptions { TotalSamples = 5 * batch, EvaluateEvery = 0, TensorBoard = false });
            });
            output.WriteLine($"{gradient}: peak growth {Mb(peak)}, estimate {Mb(estimate)} (model {Mb(MemoryBudget.ModelBytes(options))}, step {Mb(MemoryBudget.StepBytes(options, batch))}, data {Mb(MemoryBudget.DataBytes(options, data.Count))})");
            Assert.True(peak <= estimate, $"{gradient}: the run's peak grew by {Mb(peak)}, above the estimate {Mb(estimate)}");
            // An estimate far above the measured peak would refuse configurations that fit.
            Assert.True(peak > estimate / 4, $"{gradient}: the estimate {Mb(estimate)} is more than 4x the measured peak {Mb(peak)}");
        }
    }
}
