namespace Vae.Tests.Training;

/// <summary>TorchSharp 0.107 makes a Scalar for an addition's alpha and for every number in an operator, and nothing
/// keeps it alive during the native call: a collection on another thread can free it while libtorch reads it
/// ("Expected false to be true" from Scalar::toFloat). The training and evaluation paths keep theirs alive (Torch.one,
/// Torch.constant, scalars under use); here they run while another thread collects without pause.</summary>
public class CollectionRaceTests
{
    static void WhileCollecting(Action work)
    {
        using var stop = new CancellationTokenSource();
        var collector = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        });
        try { work(); }
        finally
        {
            stop.Cancel();
            collector.Wait();
        }
    }

    [Theory]
    [InlineData("aevb")]
    [InlineData("aevb-autograd")]
    [InlineData("iwae-dreg")]
    [InlineData("wake-sleep")]
    [InlineData("mcem")]
    public void TrainingAndEvaluationSurviveCollectionsOnAnotherThread(string run)
    {
        var data = run == "mcem" ? new Vae.Data.ImageData(100, 28, 28, SmallMnist.Train.Pixels[..(100 * 784)]) : SmallMnist.Train;
        WhileCollecting(() =>
        {
            using Trainer trainer = SmallMnist.ShortRun(run, seed: 3, stepSize: 0.05);
            var summary = trainer.Fit(data, new TrainingOptions { TotalSamples = run == "mcem" ? 5 * 100 * 4 : 30_000, EvaluateEvery = 0, MarginalLikelihoodPoints = 20 });
            Assert.True(double.IsFinite(summary.Evaluations[^1].TrainBound));
            if (run == "mcem") return;
            Assert.True(double.IsFinite(trainer.Model.LogLikelihood(SmallMnist.Test, k: 50)));
            Assert.All(trainer.Model.Score(SmallMnist.Test, new ScoreOptions { ImportanceSamples = 50 }), s => Assert.True(double.IsFinite(s.StandardError)));
        });
    }

    /// <summary>Appendix D's estimate (HMC chains and the kernel density estimate) and the exact quadrature, which run
    /// for minutes to hours on a committed model's 1000 images, keep their Scalars alive too, and collections change
    /// none of their values. Their native calls are long beside their Scalar operations, so the race is rarely hit
    /// here: this test passed 4 of 4 times before their sweep as well (the training cases above failed 2 of 4).</summary>
    [Theory]
    [InlineData(MarginalLikelihoodMethod.HmcMarginal)]
    [InlineData(MarginalLikelihoodMethod.Exact)]
    public void MarginalLikelihoodEstimatesSurviveCollectionsOnAnotherThread(MarginalLikelihoodMethod method)
    {
        using Trainer trainer = SmallMnist.ShortRun("aevb", seed: 3, stepSize: 0.05);
        trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 20_000, EvaluateEvery = 0 });
        var images = SmallMnist.Test.First(10);
        var estimator = new MarginalLikelihoodEstimator(new MarginalLikelihoodOptions { Method = method, BurnIn = 200, Seed = 5 });
        double alone = estimator.Estimate(trainer.Model, images);
        double collected = double.NaN;
        WhileCollecting(() => collected = estimator.Estimate(trainer.Model, images));
        Assert.True(double.IsFinite(alone), $"{method}: {alone}");
        Assert.Equal(alone, collected); // the same draws and arithmetic: the collections change nothing
    }
}
