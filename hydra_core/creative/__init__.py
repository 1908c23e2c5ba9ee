"""The creative pipeline: chapters in Fountain, the style book, and the plan of assets."""
