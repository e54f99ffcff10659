using Vae.Data;

namespace Vae.Tests.Training;

/// <summary>Section 5's step-size selection: each candidate's trial is an ordinary run, and the best training bound wins.</summary>
public class StepSizeSelectionTests
{
    static readonly double[] Candidates = [0.01, 0.05, 0.3];

    [Fact]
    public void TheChosenStepSizeHasTheHighestTrainingBoundOfTrialsThatAreOrdinaryRuns()
    {
        var options = SmallMnist.Aevb(seed: 3);
        var choice = StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, Candidates, trialSamples: 20_000, evaluationPoints: 500);

        Assert.Equal(Candidates, choice.Trials.Select(t => t.StepSize));
        Assert.Equal(choice.Trials.MaxBy(t => t.TrainingBound)!.StepSize, choice.StepSize);
        Assert.Equal(choice.StepSize, choice.Options.StepSize);
        Assert.Equal((options.Seed, options.BatchSize, options.WarmUp, options.Estimator), (choice.Options.Seed, choice.Options.BatchSize, choice.Options.WarmUp, choice.Options.Estimator));
        Assert.True(choice.Trials.Select(t => t.TrainingBound).Distinct().Count() == Candidates.Length, "different step sizes train differently");
        // A trial is the run that the chosen step size then trains: the same bound from a separate run.
        var trial = choice.Trials.Single(t => t.StepSize == choice.StepSize);
        var again = new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 3, StepSize = choice.StepSize });
        var summary = again.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 20_000, EvaluateEvery = 0, TrainEvaluationLimit = 500, TensorBoard = false });
        Assert.Equal(trial.TrainingBound, summary.Evaluations[^1].TrainBound);
    }

    [Fact]
    public void MonteCarloEmAndBadCandidatesAreRefused()
    {
        var options = SmallMnist.Aevb();
        var mcem = Assert.Throws<ArgumentException>(() =>
            StepSizeSelection.Choose(o => new McemTrainer(SmallMnist.Model, o), options, SmallMnist.Train, trialSamples: 100));
        Assert.Contains("Monte Carlo EM", mcem.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, [0.01, -1.0]));
        Assert.Throws<ArgumentException>(() =>
            StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, []));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            StepSizeSelection.Choose(o => new AevbTrainer(SmallMnist.Model, o), options, SmallMnist.Train, trialSamples: 0));
    }
}
