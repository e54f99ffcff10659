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
    [InlineData("iwae")]
    [InlineData("wake-sleep")]
    [InlineData("mcem")]
    public void TrainingAndEvaluationSurviveCollectionsOnAnotherThread(string run)
    {
        var options = new AevbOptions { Seed = 3, StepSize = 0.05 };
        var data = run == "mcem" ? new Vae.Data.ImageData(100, 28, 28, SmallMnist.Train.Pixels[..(100 * 784)]) : SmallMnist.Train;
        WhileCollecting(() =>
        {
            using Trainer trainer = run switch
            {
                "aevb" => new AevbTrainer(SmallMnist.Model, options),
                "aevb-autograd" => new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 3, StepSize = 0.05, Gradient = GradientComputation.Autograd }),
                "iwae" => new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 3, StepSize = 0.05, Objective = TrainingObjective.ImportanceWeighted, SamplesPerDatapoint = 5 }),
                "wake-sleep" => new WakeSleepTrainer(SmallMnist.Model, options),
                _ => new McemTrainer(SmallMnist.Model, options),
            };
            var summary = trainer.Fit(data, new TrainingOptions { TotalSamples = run == "mcem" ? 5 * 100 * 4 : 30_000, EvaluateEvery = 0, MarginalLikelihoodPoints = 20 });
            Assert.True(double.IsFinite(summary.Evaluations[^1].TrainBound));
            if (run != "mcem") Assert.True(double.IsFinite(trainer.Model.LogLikelihood(SmallMnist.Test, k: 50)));
        });
    }
}
