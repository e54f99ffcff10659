using Vae.Core;

namespace Vae.Tests.Training;

public class WakeSleepTrainerTests
{
    [Fact]
    public void AWakeSleepRunResumesAsWakeSleepAndIdentically()
    {
        string whole = TestEnvironment.NewTempDirectory(), parts = TestEnvironment.NewTempDirectory();
        new WakeSleepTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 20_000, RunDirectory = whole });
        new WakeSleepTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 12_000, RunDirectory = parts });
        var resumed = Trainer.Resume(parts);
        Assert.IsType<WakeSleepTrainer>(resumed);
        resumed.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 20_000, RunDirectory = parts });
        var a = VaeModelModule.tensors(Trainer.Resume(whole).Model.Core);
        var b = VaeModelModule.tensors(resumed.Model.Core);
        foreach (var (p, q) in a.Zip(b)) Assert.True(p.allclose(q, 0, 0));
        var e = Assert.Throws<CheckpointException>(() => AevbTrainer.Resume(parts));
        Assert.Contains("field 'algorithm' = 'wake-sleep', expected 'aevb'", e.Message);
    }

    [Fact]
    public void AevbEndsAboveWakeSleepOnTheSameBudget()
    {
        // The paper's Figure 2 in miniature: same model, data, seed and samples.
        var options = new TrainingOptions { TotalSamples = 60_000, EvaluateEvery = 0, TestData = SmallMnist.Test };
        double aevb = new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(SmallMnist.Train, options).Evaluations[^1].TestBound;
        double wakeSleep = new WakeSleepTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(SmallMnist.Train, options).Evaluations[^1].TestBound;
        Assert.True(aevb > wakeSleep, $"AEVB {aevb:F2} vs wake-sleep {wakeSleep:F2}");
    }
}
