"""Source: assets added to watched albums, in one account or across several."""
