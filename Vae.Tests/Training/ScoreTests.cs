using TorchSharp;
using Vae.Core;
using Vae.Data;

namespace Vae.Tests.Training;

/// <summary><see cref="VariationalAutoEncoder.Score(float[,], ScoreOptions?, CancellationToken)"/>: per-datapoint
/// log p(x) estimates with standard errors, against the mean estimate and the exact likelihood.</summary>
public class ScoreTests
{
    static readonly Lazy<VariationalAutoEncoder> Mnist = new(() =>
    {
        var trainer = new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb());
        trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 30_000, EvaluateEvery = 0 });
        return trainer.Model;
    });

    [Fact]
    public void TheScoresMeanIsTheLogLikelihoodOfTheSameSeed()
    {
        var test = SmallMnist.Test.First(250);
        var scores = Mnist.Value.Score(test, new ScoreOptions { ImportanceSamples = 200, Seed = 4 });
        Assert.Equal(250, scores.Length);
        double mean = scores.Average(s => s.LogLikelihood);
        Assert.Equal(Mnist.Value.LogLikelihood(test, k: 200, seed: 4), mean, 1e-4);
        // Each row: the estimate above its lower bound (Jensen, on the same draws), finite errors.
        Assert.All(scores, s => Assert.True(s.LogLikelihood >= s.Elbo && s.StandardError > 0 && s.ElboStandardError > 0, s.ToString()));
    }

    [Fact]
    public void StandardErrorsShrinkLikeOneOverRootKWhereTheWeightsHaveAFiniteVariance()
    {
        // 16 times the samples: a quarter of the error, row by row (the median ratio). The linear-Gaussian model's
        // encoder is a fair proposal, so its weights have a finite variance; the log-weights of the MNIST model too.
        var (model, data, _) = MarginalLikelihoodTests.Fitted.Value;
        double MedianRatio(VariationalAutoEncoder m, ImageData x, Func<DatapointScore, double> error)
        {
            var small = m.Score(x, new ScoreOptions { ImportanceSamples = 100, Seed = 1 });
            var large = m.Score(x, new ScoreOptions { ImportanceSamples = 1600, Seed = 2 });
            double[] ratios = [.. small.Zip(large, (a, b) => error(a) / error(b)).Order()];
            return ratios[ratios.Length / 2];
        }
        Assert.InRange(MedianRatio(model, data, s => s.StandardError), 3.5, 4.5);
        Assert.InRange(MedianRatio(model, data, s => s.ElboStandardError), 3.5, 4.5);
        Assert.InRange(MedianRatio(Mnist.Value, SmallMnist.Test.First(100), s => s.ElboStandardError), 3.5, 4.5);
    }

    [Fact]
    public void OnALinearGaussianModelEachRowIsWithinItsStandardErrorsOfTheExactLogLikelihood()
    {
        var (model, data, _) = MarginalLikelihoodTests.Fitted.Value;
        var scores = model.Score(data, new ScoreOptions { ImportanceSamples = 2000, Seed = 3 });
        using var x = data.ToTensor(torch.ScalarType.Float64);
        double[] exact = VaeModelModule.exactLogLikelihood(model.Core, x).data<double>().ToArray();
        var z = scores.Select((s, i) => Math.Abs(s.LogLikelihood - exact[i]) / s.StandardError).ToArray();
        Assert.All(z, v => Assert.True(v < 5, $"a row {v:F1} standard errors from its exact value"));
        // The errors are honest, not inflated: most rows lie within two of them (the bias at K = 2000 is far smaller).
        Assert.True(z.Count(v => v < 2) >= 0.85 * z.Length, $"{z.Count(v => v < 2)} of {z.Length} rows within 2 standard errors");
    }

    [Fact]
    public void AurocIsTheProbabilityThatAnInlierOutscoresAnOutlier()
    {
        Assert.Equal(1.0, DatapointScores.Auroc([3, 4, 5], [0, 1, 2]));
        Assert.Equal(0.0, DatapointScores.Auroc([0, 1], [2, 3]));
        // Pairs (inlier, outlier): 2>1, 2=2 (a half), 0<1, 0<2: 1.5 of 4.
        Assert.Equal(0.375, DatapointScores.Auroc([2, 0], [1, 2]));
        // Against counting every pair directly, with ties.
        var random = new Random(3);
        double[] a = [.. Enumerable.Range(0, 300).Select(_ => (double)random.Next(40))], b = [.. Enumerable.Range(0, 200).Select(_ => (double)random.Next(30))];
        double pairs = a.Sum(x => b.Sum(y => x > y ? 1.0 : x == y ? 0.5 : 0.0)) / (a.Length * b.Length);
        Assert.Equal(pairs, DatapointScores.Auroc(a, b), 12);
        Assert.Throws<ArgumentException>(() => DatapointScores.Auroc([], [1]));
    }

    [Fact]
    public void BadValuesAreRefusedNamingTheirRowAndColumn()
    {
        var rows = new float[3, 784];
        rows[2, 17] = float.NaN;
        var nan = Assert.Throws<ArgumentException>(() => Mnist.Value.Score(rows));
        Assert.Contains("row 2, column 17 is NaN; expected a finite value", nan.Message);
        rows[2, 17] = 0; rows[1, 400] = 1.5f;
        var outside = Assert.Throws<ArgumentException>(() => Mnist.Value.Score(rows));
        Assert.Contains("row 1, column 400 is 1.5; expected a value in [0, 1] for the Bernoulli decoder", outside.Message);
        Assert.Throws<ArgumentException>(() => Mnist.Value.Score(new float[2, 783]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Mnist.Value.Score(new float[2, 784], new ScoreOptions { ImportanceSamples = 0 }));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => Mnist.Value.Score(new float[2, 784], null, cancelled.Token));
    }
}
