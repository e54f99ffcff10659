namespace Vae.Tests.Training;

/// <summary>Short single-threaded runs of each learner pinned to their recorded end points, so that a change which moves
/// training (a model that ignores z, a learner that trains on one minibatch, a wrong gradient) fails here; the bounds
/// tolerate rounding, and the recognition models must use their latent dimensions.</summary>
public class GoldenRunTests
{
    /// <summary>Nats either side of a pinned value: rounding moves a 10⁵-sample run of this small model by hundredths of a nat.</summary>
    const double Tolerance = 0.25;

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

    /// <summary>Each end point is recorded for both of MKL's float32 kernel paths (AVX-512 and AVX2), whose sums round
    /// differently along a run.</summary>
    [Theory]
    [InlineData("aevb", -182.21, -181.43, 2)]
    [InlineData("wake-sleep", -188.83, -188.83, 1)]
    public void AShortRunEndsAtItsRecordedBoundWithItsLatentDimensionsInUse(string algorithm, double pinnedAvx512, double pinnedAvx2, int activeDimensions)
    {
        double pinned = TestEnvironment.MklRunsAvx512 ? pinnedAvx512 : pinnedAvx2;
        var trainer = ExperimentTrainer(algorithm);
        var summary = trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 100_000, EvaluateEvery = 0, TestData = SmallMnist.Test });
        double test = summary.Evaluations[^1].TestBound;
        Assert.True(Math.Abs(test - pinned) <= Tolerance, $"{algorithm}: test bound {test:F2}, recorded {pinned:F2}");
        // A model that ignores z has every dimension's KL near zero; these use some of theirs (more than 1 nat each).
        var kl = KlPerDimension(trainer.Model);
        Assert.True(kl.Count(v => v > 1.0) >= activeDimensions, $"{algorithm}: KL per dimension {string.Join(", ", kl.Select(v => v.ToString("F2")))}");
    }

    [Fact]
    public void AShortMonteCarloEmRunEndsAtItsRecordedEstimate()
    {
        var trainer = ExperimentTrainer("mcem");
        var summary = trainer.Fit(Train200, new TrainingOptions { TotalSamples = 5 * 200 * 60, EvaluateEvery = 0, MarginalLikelihoodPoints = 50 });
        double train = summary.Evaluations[^1].TrainBound;
        Assert.True(Math.Abs(train - -155.21) <= 2 * Tolerance, $"mcem: Appendix D estimate {train:F2}, recorded -155.21");
    }

    static Trainer ExperimentTrainer(string algorithm) => algorithm switch
    {
        "aevb" => new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb(seed: 3)),
        "wake-sleep" => new WakeSleepTrainer(SmallMnist.Model, SmallMnist.Aevb(seed: 3)),
        _ => new McemTrainer(SmallMnist.Model, SmallMnist.Aevb(seed: 3)),
    };
}
