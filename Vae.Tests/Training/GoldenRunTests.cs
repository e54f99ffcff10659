namespace Vae.Tests.Training;

/// <summary>Short single-threaded runs of each learner: their parameters pinned bit for bit on each MKL kernel path, their
/// end points within the spread of seeds 0-9 on any path and against the exact log p(x), so that a change which moves
/// training (a model that ignores z, a learner that trains on one minibatch, a wrong gradient) fails here; the
/// recognition models must use their latent dimensions.</summary>
public class GoldenRunTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static readonly Vae.Data.ImageData Train200 = new(200, 28, 28, SmallMnist.Train.Pixels[..(200 * 784)]);

    /// <summary>The mean over test images of KL(q(z_j|x) || N(0, 1)) for each latent dimension j.</summary>
    static double[] KlPerDimension(VariationalAutoEncoder model)
    {
        var code = model.Encode(SmallMnist.Test.ToArray2D());
        int n = code.Mean.GetLength(0), j = code.Mean.GetLength(1);
        var kl = new double[j];
        for (int i = 0; i < n; i++)
            for (int d = 0; d < j; d++)
            {
                double mu = code.Mean[i, d], lv = code.LogVariance[i, d];
                kl[d] += 0.5 * (mu * mu + Math.Exp(lv) - lv - 1) / n;
            }
        return kl;
    }

    /// <summary>A short run's test bound against the spread of the same run over seeds 0-9, measured on both of MKL's
    /// float32 kernel paths (mean and standard deviation, docs/results/golden-runs/seed-spread.txt): within four standard
    /// deviations of the mean on any CPU, where a learner that does not learn falls far below. The bound must also lie
    /// below the exact log p(x) of the same model on the same images (quadrature, J = 3), by no more than a variational
    /// gap. Exact bits per path are the parameter hashes' (below).</summary>
    [Theory]
    [InlineData("aevb", -180.60, 3.24, 2)]
    [InlineData("wake-sleep", -190.56, 1.69, 1)]
    public void AShortRunEndsWithinItsSeedSpreadBelowItsExactLogLikelihoodWithItsLatentDimensionsInUse(string algorithm, double mean, double sd, int activeDimensions)
    {
        using var trainer = ExperimentTrainer(algorithm);
        var summary = trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 100_000, EvaluateEvery = 0, TestData = SmallMnist.Test });
        double test = summary.Evaluations[^1].TestBound;
        Assert.True(Math.Abs(test - mean) <= 4 * sd, $"{algorithm}: test bound {test:F2}, outside {mean:F2} ± 4 × {sd:F2} (seeds 0-9)");
        var fifty = new Vae.Data.ImageData(50, 28, 28, SmallMnist.Test.Pixels[..(50 * 784)]);
        var model = trainer.Model;
        double bound = new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.Elbo, Draws = 10 }).Estimate(model, fifty);
        double exact = new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.Exact }).Estimate(model, fifty);
        output.WriteLine($"{algorithm}: test bound {test:F4}; on 50 test images bound {bound:F4}, exact {exact:F4}");
        Assert.True(bound < exact && exact - bound < GapLimit, $"{algorithm}: bound {bound:F2} against exact log p(x) {exact:F2} on 50 test images");
        // A model that ignores z has every dimension's KL near zero; these use some of theirs (more than 1 nat each).
        var kl = KlPerDimension(model);
        Assert.True(kl.Count(v => v > 1.0) >= activeDimensions, $"{algorithm}: KL per dimension {string.Join(", ", kl.Select(v => v.ToString("F2")))}");
    }

    /// <summary>Nats by which a short run's bound may lie below its exact log p(x): its variational gap, 3.7 (AEVB) and 1.0
    /// (wake-sleep) nats for seed 3.</summary>
    const double GapLimit = 10;

    /// <summary>Appendix D's estimate on 50 training images of a short Monte Carlo EM run's model, against the exact
    /// log p(x) of the same model on the same images (quadrature; J = 3), the independent anchor: before stuck chains were
    /// estimated again (<see cref="MarginalLikelihoodOptions.RetryStuckChains"/>) it was 0.69 nats below.</summary>
    [Fact]
    public void AShortMonteCarloEmRunsAppendixDEstimateIsItsExactLogLikelihood()
    {
        var trainer = ExperimentTrainer("mcem");
        var summary = trainer.Fit(Train200, new TrainingOptions { TotalSamples = 5 * 200 * 60, EvaluateEvery = 0, MarginalLikelihoodPoints = 50 });
        double appendixD = summary.Evaluations[^1].TrainBound;
        double exact = new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.Exact })
            .Estimate(trainer.Model, new Vae.Data.ImageData(50, 28, 28, Train200.Pixels[..(50 * 784)]));
        // Seeds 0-9 on both kernel paths: mean -160.08, sd 9.02 (docs/results/golden-runs/seed-spread.txt).
        Assert.True(Math.Abs(exact - -160.08) <= 4 * 9.02, $"mcem: exact log p(x) {exact:F4}, outside -160.08 ± 4 × 9.02 (seeds 0-9)");
        Assert.True(Math.Abs(appendixD - exact) <= 0.1, $"mcem: Appendix D estimate {appendixD:F4}, exact {exact:F4}");
    }

    /// <summary>The SHA-256 of a model's parameter vector (its float32 bytes, in the vector's order).</summary>
    static string ParameterHash(VariationalAutoEncoder model)
    {
        using var cpu = model.Core.ParameterVector.detach().contiguous();
        var bytes = new byte[cpu.NumberOfElements * cpu.ElementSize];
        cpu.bytes.CopyTo(bytes);
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes))[..16].ToLowerInvariant();
    }

    /// <summary>Restructuring changes no numbers: short runs of every learner and gradient path end with these parameter
    /// bits. They are recorded for two kernel paths: MKL's AVX-512 kernels (Intel with AVX-512, and AMD with the
    /// start-up's choice) and its AVX2 kernels on an Intel CPU (recorded with <c>MKL_ENABLE_INSTRUCTIONS=AVX2</c>). On an
    /// AMD CPU without AVX-512, MKL's dispatcher takes kernels that round differently again (the seed-spread bands above
    /// hold there too); there two runs must give the same bits, and the hash is printed to be recorded. A change to what any
    /// step computes, its order of operations or its random draws changes a hash.</summary>
    [Theory]
    [InlineData("aevb", "602ca4f20e4576ac", "5bf4add6e2b2a79d")]
    [InlineData("aevb-autograd", "6fd95a55c298b22d", "830b81a2b9b23d07")]
    [InlineData("aevb-estimator-a", "e61fc9472a4a4d84", "0ef054d9c41077f0")]
    [InlineData("aevb-estimator-a-autograd", "6b61d098caf48dea", "55fecb911285953e")]
    [InlineData("iwae-dreg", "ef016d7708d2946a", "96d7e409b3cf4890")]
    [InlineData("iwae-dreg-autograd", "a91c705087a1ae30", "c2153ddfadc11065")]
    [InlineData("iwae-burda", "2cfe524c7eb927cd", "facc9346242f6c84")]
    [InlineData("wake-sleep", "c64e940efe87dd5f", "1d6de42bf7569f85")]
    [InlineData("wake-sleep-anglepy", "ff195e88e955d2eb", "86e84b06b3fcd6d6")]
    [InlineData("mcem", "fc50ab879f93aba1", "fc50ab879f93aba1")]
    [InlineData("aevb-two-layers", "8aa9fd70c8800a9c", "e79b7155c8177bc8")]
    [InlineData("aevb-adam", "a691d1913b3ffac0", "dd7300f7d3c5e5bc")]
    public void AShortRunEndsWithItsRecordedParameterBits(string run, string avx512, string avx2OnIntel)
    {
        string? pinned = TestEnvironment.MklRunsAvx512 ? avx512 : TestEnvironment.CpuVendor == "GenuineIntel" ? avx2OnIntel : null;
        string hash = PinnedRunHash(run);
        if (pinned is not null)
            Assert.True(hash == pinned, $"{run}: parameters hash {hash}, recorded {pinned} ({(TestEnvironment.MklRunsAvx512 ? "AVX-512" : "AVX2")} kernels)");
        else
        {
            string again = PinnedRunHash(run);
            Assert.True(hash == again, $"{run}: two runs on this kernel path end with different parameters ({hash}, {again})");
            Console.WriteLine($"{run}: parameters hash {hash} on {TestEnvironment.CpuVendor}'s kernel path ({TestEnvironment.MklChoice.Description}): not recorded");
        }
    }

    static string PinnedRunHash(string run)
    {
        using Trainer trainer = SmallMnist.ShortRun(run, seed: 5, stepSize: 0.05);
        var data = run == "mcem" ? Train200 : SmallMnist.Train;
        long samples = run == "mcem" ? 5 * 200 * 6 : 20_000;
        trainer.Fit(data, new TrainingOptions { TotalSamples = samples, EvaluateEvery = 0 });
        return ParameterHash(trainer.Model);
    }

    static Trainer ExperimentTrainer(string algorithm) => algorithm switch
    {
        "aevb" => new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb(seed: 3)),
        "wake-sleep" => new WakeSleepTrainer(SmallMnist.Model, SmallMnist.Aevb(seed: 3)),
        _ => new McemTrainer(SmallMnist.Model, SmallMnist.Aevb(seed: 3)),
    };
}
